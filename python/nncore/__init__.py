from nncore._core import *
