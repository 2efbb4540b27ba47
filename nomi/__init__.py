"""The Nomi API client (httpx, no Prefect): OAuth, typed models, errors, paging, throttle."""
