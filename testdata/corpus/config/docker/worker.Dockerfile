FROM python:3.12-slim
RUN useradd --create-home worker
USER worker
WORKDIR /home/worker
COPY requirements.txt .
RUN pip install --user -r requirements.txt
USER root
RUN apt-get update && apt-get install -y --no-install-recommends imagemagick
COPY . .
CMD ["python", "-m", "worker"]
