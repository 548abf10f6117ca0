"""Trained models on new images: class probabilities and segmentation from a run folder,
sliding-window inference, post-processing, ONNX export and ONNX Runtime.

Imaging layer: may import `runs`, `errors`, `console` and the rest of `imaging`; never
`serve`, `cli` or another modality.
"""
