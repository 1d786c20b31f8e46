"""Recording a ``pytorch_lightning`` ``Trainer.fit`` — the standalone distribution of
Lightning, the import most codebases still use (``import pytorch_lightning as pl``).

    from pytest_optcheck.integrations.pytorch_lightning import OptcheckCallback
    callback = OptcheckCallback()            # or optcheck.callback("pytorch_lightning")
    pl.Trainer(..., callbacks=[callback]).fit(model, data)
    optcheck.check(callback.trajectory)

The same recording as :mod:`.lightning` (see there for what it records), built on
``pytorch_lightning.callbacks.Callback``: that Trainer rejects a callback of the other
package. ``pytorch_lightning`` is imported when this module is, never by the plugin itself.
"""

from __future__ import annotations

from pytorch_lightning.callbacks import Callback

from .base import LightningRecordingCallback


class OptcheckCallback(LightningRecordingCallback, Callback):
    """A ``pytorch_lightning`` ``Callback`` recording one ``Trainer.fit`` for optcheck."""

    PACKAGE = "pytorch_lightning"
