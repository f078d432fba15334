// The ctrlX login of this page: taken from `?token=`/`?access_token=` (the ctrlX menu link),
// kept in memory only, and removed from the address bar at once so it does not linger in the
// history, bookmarks or screenshots. Links to the app's other pages carry it on click.
const url = new URL(location.href);
let token = url.searchParams.get('token') || url.searchParams.get('access_token') || '';
if (url.searchParams.has('token') || url.searchParams.has('access_token')) {
  url.searchParams.delete('token');
  url.searchParams.delete('access_token');
  history.replaceState(history.state, '', url);
}
if (!token) {
  // A page rendered for a form post carries the token in its form instead.
  const field = document.querySelector('input[name="_token"]');
  if (field) token = field.value;
}

window.ctrlxToken = () => token;

/** The `exp` of a JWT in ms since the epoch, or 0 when it has none or is not a JWT. */
function expiryOf(jwt) {
  try {
    const payload = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const exp = JSON.parse(atob(payload)).exp;
    return typeof exp === 'number' ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}

/**
 * Takes a fresh login after this one expired or was revoked: the token the ctrlX UI keeps and
 * renews in `sessionStorage.idm_token` (the app's pages are served on the same origin behind the
 * ctrlX proxy). True when one was found that differs from the current one and has not expired.
 */
window.ctrlxRefreshToken = () => {
  let fresh = null;
  try {
    fresh = sessionStorage.getItem('idm_token');
  } catch {
    return false; // storage blocked
  }
  if (fresh?.startsWith('"')) {
    try {
      fresh = JSON.parse(fresh);
    } catch {
      return false;
    }
  }
  if (typeof fresh !== 'string' || !fresh || fresh === token || expiryOf(fresh) <= Date.now()) return false;
  token = fresh;
  return true;
};

const prefix = new URL('..', new URL(import.meta.url)).pathname; // /ctrlx-novnc/
document.addEventListener('click', (event) => {
  const link = event.target instanceof Element ? event.target.closest('a[href]') : null;
  if (!link || !token) return;
  const target = new URL(link.href, location.href);
  if (target.origin !== location.origin || !target.pathname.startsWith(prefix)) return;
  target.searchParams.set('token', token);
  link.href = target.href;
});
