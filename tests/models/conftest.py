"""The ``parity`` mark: comparisons with torchvision, run where torch is installed (``-m parity``)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "parity: compares with torchvision; needs torch installed")
