"""Reading the weights files that torch and torchvision publish, without torch.

``torch_format`` reads any ``torch.save`` state dict (zip or legacy layout) into NumPy arrays with a
small pickle interpreter that knows only a state dict's opcodes and globals, so a hostile file cannot
run code; ``torchvision`` knows torchvision's published files, their key names and their hashes.
"""
