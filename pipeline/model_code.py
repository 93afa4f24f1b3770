"""The churn-risk pyfunc as MLflow "models from code".

`log_model` hands MLflow this file instead of a pickled object; loading a logged model runs it,
and the model's weights come from plain files (LightGBM text, JSON, parquet) read by
`ChurnRiskModel.load`. Nothing is ever unpickled. It imports the installed `pipeline` package,
so the model loads wherever churn is installed.
"""

import mlflow

from pipeline.tracking import ChurnModelPyfunc

mlflow.models.set_model(ChurnModelPyfunc())
