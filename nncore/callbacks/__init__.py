"""Callbacks, as ``keras.callbacks``.

The model drives them through ``CallbackList`` (see ``callback_list`` for the
exact sequence of calls, ``needs_batch_hooks()`` and ``update_progress()``).
"""
from nncore.callbacks.callback import Callback
from nncore.callbacks.callback_list import CallbackList
from nncore.callbacks.csv_logger import CSVLogger
from nncore.callbacks.early_stopping import EarlyStopping
from nncore.callbacks.history import History
from nncore.callbacks.lambda_callback import LambdaCallback
from nncore.callbacks.learning_rate_scheduler import LearningRateScheduler
from nncore.callbacks.model_checkpoint import ModelCheckpoint
from nncore.callbacks.monitor import MonitorCallback
from nncore.callbacks.progbar_logger import ProgbarLogger
from nncore.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from nncore.callbacks.tensorboard import TensorBoard
from nncore.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = ["Callback", "CallbackList", "CSVLogger", "EarlyStopping", "History",
           "LambdaCallback", "LearningRateScheduler", "ModelCheckpoint", "MonitorCallback",
           "ProgbarLogger", "ReduceLROnPlateau", "TensorBoard", "TerminateOnNaN"]


def __getattr__(name):
    # keras.callbacks.BackupAndRestore & co.: say they are not in nncore yet
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
