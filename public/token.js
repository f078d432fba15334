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

const prefix = new URL('..', new URL(import.meta.url)).pathname; // /ctrlx-novnc/
document.addEventListener('click', (event) => {
  const link = event.target instanceof Element ? event.target.closest('a[href]') : null;
  if (!link || !token) return;
  const target = new URL(link.href, location.href);
  if (target.origin !== location.origin || !target.pathname.startsWith(prefix)) return;
  target.searchParams.set('token', token);
  link.href = target.href;
});
