import DOMPurify from 'dompurify';

const params = new URLSearchParams(window.location.search);

export function renderGreeting(el: HTMLElement): void {
  el.innerHTML = `<p>Welcome back, ${params.get('name')}!</p>`;
}

export function renderGreetingSafe(el: HTMLElement): void {
  el.textContent = `Welcome back, ${params.get('name')}!`;
}

export function renderAnchor(el: HTMLElement): void {
  el.innerHTML = decodeURIComponent(location.hash.substring(1));
}

export function renderSanitised(el: HTMLElement): void {
  el.innerHTML = DOMPurify.sanitize(location.hash.substring(1));
}

export function renderStatic(el: HTMLElement): void {
  el.innerHTML = '<ul class="menu"><li>Home</li></ul>';
}

export function legacyBanner(): void {
  document.write('<img src="/t.gif?ref=' + document.referrer + '">');
}

window.addEventListener('message', (e: MessageEvent) => {
  document.getElementById('inbox')!.insertAdjacentHTML('beforeend', e.data);
});

export function applyFormula(formula: string, x: number): number {
  const fn = new Function('x', 'return ' + formula);
  return fn(x);
}

export function square(x: number): number {
  const fn = new Function('x', 'return x * x');
  return fn(x);
}

export function schedule(widget: string): void {
  setTimeout(() => refresh(widget), 500);
}

function refresh(widget: string): void {
  console.log('refresh', widget);
}
