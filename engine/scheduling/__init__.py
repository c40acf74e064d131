"""Scheduling with Celery (worker + beat on Redis); ``levelset serve`` uses APScheduler instead."""
