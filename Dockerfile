# imap2api service image: `serve` by default, `worker` (with IMAP2API_REDIS_URL) by argument.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY imap2api ./imap2api
# GraphiQL's browser assets from the npm registry (pinned, hash-checked), installed as package data.
RUN python imap2api/graphiql/fetch_assets.py
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --create-home --home-dir /var/lib/imap2api imap2api
COPY --from=build /install /usr/local
ENV IMAP2API_DATA_DIR=/var/lib/imap2api/data \
    PYTHONUNBUFFERED=1
USER imap2api
WORKDIR /var/lib/imap2api
VOLUME ["/var/lib/imap2api/data"]
EXPOSE 8000
ENTRYPOINT ["imap2api"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
