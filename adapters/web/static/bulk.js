// Bulk selection on findings and issues lists: a select-all checkbox for
// the page, a live count of selected rows, and a guard against submitting
// "selected rows" with none selected. Without JavaScript the per-row
// checkboxes and the "every matching row" option work as they are.
export function enhanceBulk(form) {
  const all = form.querySelector('[data-select-all]');
  const out = form.querySelector('[data-selected-count]');
  const rows = () => [...form.querySelectorAll('input[type=checkbox][name=issue]:not(:disabled)')];

  const update = () => {
    const n = rows().filter((c) => c.checked).length;
    if (out) out.textContent = n ? `(${n} selected)` : '';
    if (all) {
      all.checked = n > 0 && n === rows().length;
      all.indeterminate = n > 0 && n < rows().length;
    }
  };
  if (all) {
    all.hidden = false;
    all.addEventListener('change', () => {
      for (const c of rows()) c.checked = all.checked;
      update();
    });
  }
  form.addEventListener('change', (e) => { if (e.target.name === 'issue') update(); });
  form.addEventListener('submit', (e) => {
    const target = form.querySelector('input[name=target]:checked');
    if (target && target.value === 'selected' && !rows().some((c) => c.checked)) {
      e.preventDefault();
      if (out) out.textContent = '(select at least one row)';
      if (all) all.focus();
    }
  });
  update();
}
