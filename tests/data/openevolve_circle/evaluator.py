import importlib.util
import math


def _load(path):
    spec = importlib.util.spec_from_file_location("candidate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate(program_path):
    try:
        points = _load(program_path).run()
        points = [(min(1.0, max(0.0, float(x))), min(1.0, max(0.0, float(y)))) for x, y in points][:8]
        if len(points) < 8:
            return {"combined_score": 0.0, "error": "fewer than 8 points"}
        d = min(math.dist(a, b) for i, a in enumerate(points) for b in points[i + 1:])
        return {"combined_score": d, "min_distance": d}
    except Exception as exc:
        return {"combined_score": 0.0, "error": str(exc)}
