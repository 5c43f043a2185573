"""Drive the live widgets through a real kernel the way a browser does (used by
``test_colab_widgets.py``; run with the Python of the environment under test).

Starts an ipykernel with jupyter_client, executes a notebook's cells, keeps the widget state
the kernel sends on iopub (comm_open / comm_msg, binary buffers included), moves sliders by
sending ``comm_msg`` ``{"method": "update", "state": {"index": i}}`` as the widget manager of
Jupyter or Colab does, and prints one JSON object describing what a front end would show.
"""

from __future__ import annotations

import json
import queue
import sys
import time

from jupyter_client.manager import start_new_kernel

PNG = b"\x89PNG\r\n\x1a\n"


class Front:
    """The part of a widget manager that matters here: model state by comm id."""

    def __init__(self, kc):
        self.kc = kc
        self.models: dict[str, dict] = {}
        self.events: list[dict] = []  # (time, comm id, changed keys) of kernel -> front updates
        self.texts: list[str] = []  # text/plain of every display_data / execute_result
        self.errors: list[str] = []
        self.stdout: list[str] = []

    def _absorb(self, msg) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind in ("comm_open", "comm_msg"):
            data = content.get("data", {})
            state = dict(data.get("state", {}))
            for path, buf in zip(data.get("buffer_paths", []), msg.get("buffers", [])):
                state[path[0]] = bytes(buf)
            if kind == "comm_open" or data.get("method") == "update":
                self.models.setdefault(content["comm_id"], {}).update(state)
                self.events.append(
                    {"t": time.perf_counter(), "id": content["comm_id"], "keys": sorted(state)}
                )
        elif kind in ("display_data", "execute_result"):
            self.texts.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            self.errors.append(f"{content['ename']}: {content['evalue']}")
        elif kind == "stream" and content.get("name") == "stderr":
            self.errors.append("stderr: " + content["text"][:500])
        elif kind == "stream":
            self.stdout.append(content["text"])

    def pump(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while True:
            left = end - time.perf_counter()
            if left <= 0:
                return
            try:
                self._absorb(self.kc.get_iopub_msg(timeout=min(left, 0.2)))
            except queue.Empty:
                pass

    def run(self, code: str, timeout: float = 300) -> None:
        msg_id = self.kc.execute(code)
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            try:
                msg = self.kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            self._absorb(msg)
            if (
                msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
                and msg["parent_header"].get("msg_id") == msg_id
            ):
                return
        raise TimeoutError(f"cell did not finish in {timeout} s: {code[:80]}")

    def find(self, model: str, **state) -> list[str]:
        return [
            cid
            for cid, s in self.models.items()
            if s.get("_model_name") == model and all(s.get(k) == v for k, v in state.items())
        ]

    def move(self, comm_id: str, index: int) -> None:
        """What the widget manager sends when a reader releases a slider."""
        msg = self.kc.session.msg(
            "comm_msg",
            {
                "comm_id": comm_id,
                "data": {"method": "update", "state": {"index": index}, "buffer_paths": []},
            },
        )
        self.kc.shell_channel.send(msg)

    def wait_for(self, predicate, timeout: float) -> bool:
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            if predicate():
                return True
            self.pump(0.2)
        return predicate()


def main() -> None:
    km, kc = start_new_kernel(kernel_name="python3")
    front = Front(kc)
    out: dict = {"python": sys.version.split()[0]}
    try:
        # A fresh kernel: no pyplot figure drawn, no inline backend activated on purpose.
        front.run(
            "import ipywidgets, ipykernel, IPython, matplotlib, torch\n"
            "print(ipywidgets.__version__, ipykernel.__version__, IPython.__version__)"
        )
        front.run(
            "import monosem_lib as ml\nfrom monosem_lib import book\n"
            "ex = book.BiasExplorer(base=ml.preset('tiny', steps=600), every=100,\n"
            "                          init_biases=(-1.0, 0.0), shrinks=(0.0, 5.0), lrs=(0.01,))\n"
            "ex.view.wait(120)\nex"
        )
        out["versions"] = "".join(front.stdout).split()
        images = front.find("ImageModel")
        statuses = [
            cid
            for cid, s in front.models.items()
            if s.get("_model_name") == "HTMLModel" and "initial bias" in s.get("value", "")
        ]
        sliders = {
            front.models[c].get("description"): c for c in front.find("SelectionSliderModel")
        }
        out["initial"] = {
            "images": len(images),
            "png": [front.models[c].get("value", b"")[:8] == PNG for c in images],
            "status": [front.models[c]["value"] for c in statuses],
            "sliders": sorted(sliders),
        }
        image, status = images[0], statuses[0]
        before = front.models[image]["value"]
        first = len(front.events)

        # Move the initial-bias slider (index 0 is -1.0): a retrain with partial redraws.
        start = time.perf_counter()
        front.move(sliders["initial bias"], 0)
        done = front.wait_for(
            lambda: "trained live" in front.models[status]["value"]
            and "initial bias -1.00" in front.models[status]["value"],
            120,
        )
        out["retrain_seconds"] = time.perf_counter() - start
        out["retrain_done"] = done
        updates = [e for e in front.events[first:] if e["id"] == image and "value" in e["keys"]]
        out["image_updates"] = len(updates)
        out["image_changed"] = front.models[image]["value"] != before
        out["final_png"] = front.models[image]["value"][:8] == PNG
        out["final_status"] = front.models[status]["value"]

        # Move during a retrain: the new setting must win.
        front.move(sliders["shrink S"], 1)  # (-1, 5): retrains
        front.wait_for(lambda: "training step 100/" in front.models[status]["value"], 60)
        front.move(sliders["initial bias"], 1)  # (0, 5): restarts
        front.wait_for(
            lambda: "trained live" in front.models[status]["value"]
            and "initial bias +0.00" in front.models[status]["value"],
            120,
        )
        front.pump(1.0)
        out["restart_status"] = front.models[status]["value"]

        # The other live views, fresh: checkpoint explorer and neuron inspector.
        front.run(
            "run = ml.train(ml.preset('tiny', steps=64), progress=False)\n"
            "cx = book.checkpoint_explorer(run)\n"
            "ni = book.neuron_inspector(run, samples=512)\n"
            "display(cx, ni)"
        )
        out["images_all"] = [
            front.models[c].get("value", b"")[:8] == PNG for c in front.find("ImageModel")
        ]
        pickers = [
            c
            for c in front.find("SelectionSliderModel")
            if front.models[c].get("description") == "neuron"
        ]
        labels = front.models[pickers[0]].get("_options_labels", [])
        out["neuron_labels"] = labels[:3]
        insp_status = [
            cid
            for cid, s in front.models.items()
            if s.get("_model_name") == "HTMLModel" and "ablated" in s.get("value", "")
        ][0]
        front.move(pickers[0], 3)
        front.wait_for(lambda: "neuron 3 (" in front.models[insp_status]["value"], 30)
        out["inspector_status"] = front.models[insp_status]["value"]
        out["figure_text"] = [t for t in front.texts if "<Figure" in t]
        out["errors"] = front.errors
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
