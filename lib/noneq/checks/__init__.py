"""Self-checks for the exercises (INRIA MOOC style).

Each ``check_*`` function passes with a correct answer (printing a short confirmation) and
otherwise raises an ``AssertionError`` that says what is off. One submodule per chapter; every
name in a submodule's ``__all__`` is re-exported here, so chapters write
``checks.check_hessian_spectrum(...)``.
"""
import importlib
import pkgutil

__all__ = []
for _info in pkgutil.iter_modules(__path__):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", []):
        if _name in globals():
            raise ImportError(f"check {_name!r} is defined twice (in {_info.name} and elsewhere)")
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
