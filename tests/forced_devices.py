"""Environment for a subprocess that sees ``n`` forced CPU devices."""

import os


def forced_devices_env(host_devices: int) -> dict[str, str]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={host_devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env["LOFW_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env
