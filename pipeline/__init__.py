"""remot's library (map: README "Layout of the code")."""
import os

# OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS once, when cv2 loads (its default, 2^30 pixels, is 3 GB as BGR). Every
# image is first measured from its header against limits.max_pixels (pipeline/core/image_limits.py); this lower
# ceiling (= image_limits.BACKSTOP_PIXELS) stops whatever that check cannot see. Set here, before any module of the
# library imports cv2; a value already in the environment wins.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 27))
