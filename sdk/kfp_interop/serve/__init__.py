"""Local Open Inference Protocol serving: the app, the runtime, and server processes.

``kfp-interop serve MODEL.onnx`` runs a server in the foreground; :func:`start_server`
starts one as a detached background process (what the ``deploy`` step does for
``target=local``) and :func:`stop_server` stops it.
"""

from kfp_interop.serve.process import ServerHandle, serve_forever, start_server, stop_server

__all__ = ["ServerHandle", "start_server", "stop_server", "serve_forever"]
