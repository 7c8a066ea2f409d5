"""int8 TFLite -> C compiler: frontend, IR, passes, static memory planner, code generator."""
from toolchain.compiler.driver import CompileResult, compile_model

__all__ = ["CompileResult", "compile_model"]
