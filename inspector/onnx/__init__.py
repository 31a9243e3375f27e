"""ONNX files without PyTorch: checks, onnxruntime sessions, comparison and statistics, test data,
summaries. Nothing in this folder imports torch (tests/test_structure.py holds it to that), so a
repository can check its `.onnx` file against golden data with only onnx and onnxruntime."""
