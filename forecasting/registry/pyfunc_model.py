"""The model file MLflow logs with every version ("models from code"): it builds the pyfunc by import.

MLflow runs this file when ``mlflow.pyfunc.load_model`` (or ``mlflow models serve``) loads a version,
instead of unpickling a ``python_model.pkl``; the weights, config and scaler it serves are the plain
files of the version's ``forecaster`` artifact. The forecasting package it imports is the copy shipped
in the version's ``code/`` folder, so a serving process needs only the serving packages.
"""

import mlflow

from forecasting.registry.serving import ForecasterModel

mlflow.models.set_model(ForecasterModel())
