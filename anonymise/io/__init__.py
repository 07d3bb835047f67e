"""Files, cameras and streams in and out.

- :mod:`.files`: writing through a hidden temporary name, renamed when complete;
- :mod:`.video`: PyAV decode and encode (timestamps, rotation, audio copy);
- :mod:`.images`: still images in and out;
- :mod:`.camera`: a local camera through OpenCV;
- :mod:`.sources`: what ``--video-source`` means, output names, folder walks;
- :mod:`.keypoints`: the keypoint file format (JSONL, CSV);
- :mod:`.outputs`: one run per output, and the litter of killed runs.
"""
