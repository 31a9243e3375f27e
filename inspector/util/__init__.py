"""Small helpers every part of inspector shares: files, text, training modes, progress, leftovers.

None of them imports torch, so the torch-free `inspector.onnx` may use them.
"""
