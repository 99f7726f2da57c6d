"""The hub's benchmarks and their stand-ins: launch latency ours vs stock (`launch_latency`,
`stock_hub`) and the hub's own capacity with cheap learner servers (`capacity` and the modules
it names). Run with `./pants run hub:bench-launch`; nothing here ships in the hub image.
"""
