// A small client of the public REST API (/v1), the dashboard's only data source. The API is found
// relative to the page (the page is served at <service>/ui/), so a path prefix in front of the service
// keeps working. The bearer token lives in sessionStorage: it is gone when the tab closes.

const TOKEN_KEY = "scaleladder.token";
export const API_BASE = new URL("../", document.baseURI);

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.field ? `${err.field}: ${err.message}` : err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export async function get(path, params = {}) {
  const url = new URL(path.replace(/^\//, ""), API_BASE);
  for (const [key, value] of Object.entries(params)) {
    for (const v of [].concat(value)) if (v !== undefined && v !== null) url.searchParams.append(key, v);
  }
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token.get() || ""}` } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// Every item of a paginated listing (the API's keyset pages: pass next_page_token back as page_token).
export async function all(path, params = {}) {
  const items = [];
  let pageToken;
  let pageSize = 1000; // the service's default page_size_max; a deployment may set it lower
  do {
    let page;
    try {
      page = await get(path, { ...params, page_size: pageSize, page_token: pageToken });
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 422 && pageSize)) throw e;
      pageSize = undefined; // fall back to the service's default page size
      continue;
    }
    items.push(...page.items);
    pageToken = page.next_page_token;
  } while (pageToken);
  return items;
}

// JSON carries non-finite numbers as the strings "nan", "inf", "-inf": a chart skips them.
export const finite = (v) => typeof v === "number" && Number.isFinite(v);
