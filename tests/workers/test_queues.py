from workers import queues
from workers.celery import app


def test_routes_by_task_module():
    assert queues.queue_for("workers.tasks.sends.send_batch") == queues.SENDS
    assert queues.queue_for("workers.tasks.ml.train") == queues.ML
    assert queues.queue_for("workers.tasks.gpu.train_sequential") == queues.GPU
    assert queues.queue_for("workers.tasks.language.generate") == queues.GPU
    assert queues.queue_for("workers.tasks.system.selfcheck") == queues.DEFAULT


def test_celery_router_agrees_with_queue_for():
    for name in ["workers.tasks.sends.x", "workers.tasks.ml.y", "workers.tasks.system.selfcheck"]:
        route = app.amqp.router.route({}, name, args=(), kwargs={})
        assert route["queue"].name == queues.queue_for(name)


def test_queue_module_is_import_light():
    import subprocess
    import sys

    code = "import sys, workers.queues; print('django' in sys.modules, 'celery' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
