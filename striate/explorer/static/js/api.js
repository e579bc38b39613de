// Talking to the server: JSON in, JSON out, and the server's own error message when it refuses.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function answer(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.error || response.statusText, body);
  return body;
}

export async function getJSON(url) {
  return answer(await fetch(url));
}

// POST the bytes of an image (a Blob or File) as the request's body.
export async function postImage(url, blob) {
  const headers = { "Content-Type": blob.type || "application/octet-stream" };
  return answer(await fetch(url, { method: "POST", body: blob, headers }));
}

// Run `task` at most once per `wait` ms, always with the latest call's arguments,
// and never two at a time: a call made while one runs is kept and runs after it.
export function throttled(task, wait) {
  let timer = null, running = false, pending = null;
  const start = async () => {
    timer = null;
    if (running) return;
    const args = pending;
    pending = null;
    running = true;
    try { await task(...args); } finally {
      running = false;
      if (pending) timer = setTimeout(start, wait);
    }
  };
  return (...args) => {
    pending = args;
    if (!timer && !running) timer = setTimeout(start, wait);
  };
}
