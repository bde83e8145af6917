# One image for every orchlive process: `master` (default) or `worker ...` by command.
#   docker build -t orchlive .                       # FROM python:3.11-slim
#   docker build --build-arg BASE=orch-base:bookworm -t orchlive .   # any Debian-like base with python3 (see deploy/)
ARG BASE=python:3.11-slim
FROM ${BASE}

# A virtual environment: works on python images and on Debian's python3 (PEP 668) alike.
RUN python3 -m venv /opt/orch
ENV PATH=/opt/orch/bin:$PATH \
    PYTHONUNBUFFERED=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY orchsim ./orchsim
COPY orchlive ./orchlive
RUN pip install --no-cache-dir .

# Inside a container the API must listen on all interfaces; publish it on the host's loopback
# (docker-compose.yml does) or behind your own proxy.
ENV ORCH_HOST=0.0.0.0 \
    ORCH_PORT=8080
EXPOSE 8080
ENTRYPOINT ["python", "-m", "orchlive"]
CMD ["master"]
