"""An HTTP fake of the Kubernetes API for deploy tests: kmock's KubernetesEmulator (a
stateful in-memory API server) on 127.0.0.1 in a background thread, so the unchanged,
synchronous ``kubernetes`` client talks to it over real HTTP. Tests play the controller
by patching ``status`` through the same API."""

import asyncio
import threading
import time

import kmock
from kmock._internal import apps


class FakeKube:
    def __init__(self):
        self._started = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._started.wait(15):
            raise RuntimeError("kmock did not start")
        import kubernetes

        cfg = kubernetes.client.Configuration()
        cfg.host = self.url
        self.client = kubernetes.client.ApiClient(cfg)
        self.api = kubernetes.client.CustomObjectsApi(self.client)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self):
        self._stop = asyncio.Event()
        async with kmock.KubernetesEmulator() as emulator, apps.Server(emulator) as server:
            self.emulator = emulator
            self.url = str(server.url).rstrip("/")
            self._started.set()
            await self._stop.wait()

    def close(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def fail(self, method: str, status: int, reason: str = "Failure"):
        """Answer every ``method`` request with a Kubernetes Status error."""
        return self.emulator[method.lower()] << kmock.Response(status=status, payload={
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
            "message": f"injected {status}", "code": status})

    # -- objects, as a controller sees them --------------------------------------------
    def get(self, res, ns, name):
        import kubernetes

        try:
            return self.api.get_namespaced_custom_object(res.group, res.version, ns,
                                                         res.plural, name)
        except kubernetes.client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def create(self, res, ns, body):
        return self.api.create_namespaced_custom_object(res.group, res.version, ns,
                                                        res.plural, body)

    def set_status(self, res, ns, name, status):
        return self.api.patch_namespaced_custom_object_status(
            res.group, res.version, ns, res.plural, name, {"status": status})

    def controller(self, res, ns, name, status, *, delay=0.5, when=None):
        """Set ``status`` on the object once it exists (and ``when(obj)`` holds)."""

        def run():
            end = time.monotonic() + 30
            while time.monotonic() < end:
                obj = self.get(res, ns, name)
                if obj is not None and (when is None or when(obj)):
                    time.sleep(delay)
                    self.set_status(res, ns, name, status)
                    return
                time.sleep(0.05)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t
