// Shown when a page was opened without a ctrlX login. The ctrlX web UI keeps the user's token in
// this origin's sessionStorage; if it is there, reload this page with it (the page strips it from
// the address bar again at once).
const token = sessionStorage.getItem('idm_token');
const url = new URL(location.href);
if (token && !url.searchParams.has('token')) {
  url.searchParams.set('token', token);
  location.replace(url);
}
