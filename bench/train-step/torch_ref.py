"""PyTorch reference for bench/train-step: the same model, optimiser and batch as run.js.

Prints one JSON object: median training-step time (ms) over several steps after warm-up, and
the median inference time (eval mode, no autograd) for 1 and 32 images of 224x224x1.
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn


def block(cin, cout):
    # Keras BatchNormalization defaults: momentum 0.99 (torch 0.01), epsilon 1e-3.
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.MaxPool2d(2)]


def inference_model():
    # The training model plus the sigmoid that tfjs applies in its Dense layer.
    return nn.Sequential(*block(1, 32), *block(32, 64), *block(64, 128), *block(128, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 1), nn.Sigmoid())


def median_ms(f, warmup, steps):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def inference_ms(batch, steps):
    model = inference_model().to(memory_format=torch.channels_last).eval()
    x = torch.rand(batch, 1, 224, 224).to(memory_format=torch.channels_last)

    def predict():
        with torch.no_grad():
            return model(x).numpy()

    return median_ms(predict, 3, steps)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    batch = 32
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = nn.Sequential(*block(1, 32), *block(32, 64), *block(64, 128), *block(128, 128),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 1))
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()
    x = torch.rand(batch, 1, 128, 128).to(memory_format=torch.channels_last)
    y = (torch.rand(batch, 1) > 0.5).float()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1000)
    inference = {"batch1_224": inference_ms(1, steps), "batch32_224": inference_ms(32, steps)}
    print(json.dumps({"torch": torch.__version__, "threads": threads, "median_ms": statistics.median(times), "times_ms": times,
                      "inference_ms": inference}))


if __name__ == "__main__":
    main()
