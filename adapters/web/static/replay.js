// Replay slider: the range input shows the version it points at while it
// moves, and shows that version (a server-rendered page) when released or
// stepped with the keyboard. Without JavaScript the form's button does it.
export function enhanceReplay(form) {
  const range = form.querySelector('input[type=range]');
  const out = form.querySelector('output');
  if (!range) return;
  const go = () => {
    const u = new URL(form.action, location.origin);
    u.searchParams.set('version', range.value);
    location.assign(u);
  };
  range.addEventListener('input', () => { if (out) out.textContent = range.value; });
  range.addEventListener('change', go);
}
