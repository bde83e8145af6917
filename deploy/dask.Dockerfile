# The image of the optional Dask services in docker-compose.yml (profile "dask"): orchsim with
# its `cluster` extra, so `dask scheduler` and `dask worker` run orchsim's sweep jobs.
#   docker compose --profile dask up -d --scale dask-worker=4
# Build it with the Python version of the machine that runs the sweep (Dask warns on a mismatch).
ARG BASE=python:3.11-slim
FROM ${BASE}

RUN python3 -m venv /opt/orch
ENV PATH=/opt/orch/bin:$PATH \
    PYTHONUNBUFFERED=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY orchsim ./orchsim
COPY orchlive ./orchlive
RUN pip install --no-cache-dir '.[cluster]'

ENTRYPOINT ["dask"]
CMD ["scheduler"]
