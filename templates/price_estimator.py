"""The price-estimator version authored from plain Python functions.

The same version as the hand-written project in ``templates/price-estimator/`` (two workflows, four
nodes, internal messages, a config variable and a model asset), written the krtlab way. Run it to
export and build it::

    python templates/price_estimator.py build/price-estimator
"""

import json
import os
import sys
from pathlib import Path

import krtlab as krt

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "price-estimator"

v = krt.Version(
    "price-estimator-v1",
    description="New York room price predictions, with a second workflow that records "
    "prediction metrics.",
)
pb = v.proto(PROJECT / "public_input.proto")


@v.message
class EtlOutput:
    """Features of one listing, in the order the model's weights expect."""

    features: list[float]


@v.message
class ModelOutput:
    price_usd: float


v.config("OUTPUT_PRICE_CURRENCY")
v.asset("models/coefficients.json", PROJECT / "models" / "coefficients.json")

RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79}


def flag(value: str, wanted: str) -> float:
    return 1.0 if value.lower() == wanted else 0.0


@v.node
def etl(req: pb.Request) -> EtlOutput:
    return EtlOutput(
        features=[
            flag(req.neighbourhood, "manhattan"),
            flag(req.neighbourhood, "brooklyn"),
            flag(req.room_type, "entire home/apt"),
            float(req.accommodates),
            float(req.bedrooms),
            float(req.minimum_nights),
        ]
    )


@v.node
def model(ctx, listing: EtlOutput) -> ModelOutput:
    coefficients = ctx.get("model")
    price = coefficients["intercept"] + sum(
        w * x for w, x in zip(coefficients["weights"], listing.features)
    )
    return ModelOutput(price_usd=max(price, 0.0))


@model.init
def load_model(ctx):
    with open(ctx.path("models/coefficients.json")) as f:
        ctx.set("model", json.load(f))


@v.node
def output(ctx, estimate: ModelOutput) -> pb.Response:
    currency = os.getenv("OUTPUT_PRICE_CURRENCY", "USD")
    price = round(estimate.price_usd * RATES.get(currency, 1.0), 2)
    ctx.measurement.save("prices", {"price": price}, {"currency": currency})
    return pb.Response(price=price, currency=currency)


@v.node(name="save-metric")
async def save_metric(ctx, req: pb.MetricRequest) -> pb.MetricResponse:
    await ctx.prediction.save(
        predicted_value=str(round(req.predicted_price)),
        true_value=str(round(req.real_price)),
    )
    await ctx.db.save(
        "metrics", {"predicted": req.predicted_price, "real": req.real_price, "date": req.date}
    )
    return pb.MetricResponse(saved=True, message="metric saved")


v.workflow("ny-room-price", entrypoint="MakePrediction", sequential=[etl, model, output])
v.workflow("save-metrics", entrypoint="SavePredictionMetric", sequential=[save_metric])


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/price-estimator")
    print(v.validate())
    print("exported", v.export(out))
    print("built", v.build(out.with_suffix(".krt")))
