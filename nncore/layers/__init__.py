"""Layers, as ``keras.layers``: one layer per module."""
from nncore.layers.activation import Activation
from nncore.layers.conv2d import Conv2D, Convolution2D
from nncore.layers.dense import Dense
from nncore.layers.dropout import Dropout
from nncore.layers.embedding import Embedding
from nncore.layers.flatten import Flatten
from nncore.layers.gru import GRU
from nncore.layers.input_layer import Input, InputLayer
from nncore.layers.layer import Layer
from nncore.layers.lstm import LSTM
from nncore.layers.pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D
from nncore.layers.simple_rnn import SimpleRNN

__all__ = ["Activation", "AveragePooling2D", "AvgPool2D", "Conv2D", "Convolution2D",
           "Dense", "Dropout", "Embedding", "Flatten", "GRU", "Input", "InputLayer", "LSTM",
           "Layer", "MaxPool2D", "MaxPooling2D", "SimpleRNN"]


def __getattr__(name):
    # keras.layers.BatchNormalization & co.: say they are not in nncore yet
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
