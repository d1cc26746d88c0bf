// The lead console's one script (served by the API; the CSP allows no inline script). It draws
// the charts from the pages' JSON data blocks with Chart.js, keeps the sales queue's countdowns
// current and loads an uploaded config file into the what-if form. Pages work without it.
'use strict';

function data(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : undefined;
}

const PALETTE = ['#2563eb', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#84cc16', '#ec4899'];

function funnelChart() {
  const d = data('funnel-data');
  const canvas = document.getElementById('funnel-chart');
  if (!d || !canvas || !window.Chart) return;
  new window.Chart(canvas, {
    type: 'bar',
    data: {
      labels: d.labels,
      datasets: d.series.map((s, i) => ({
        label: s.label,
        data: s.data,
        backgroundColor: PALETTE[i % PALETTE.length],
      })),
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
}

function factorsChart() {
  const d = data('factors-data');
  const canvas = document.getElementById('factors-chart');
  if (!d || !canvas || !window.Chart) return;
  new window.Chart(canvas, {
    type: 'bar',
    data: {
      labels: d.map((f) => f.label),
      datasets: [
        {
          label: 'points',
          data: d.map((f) => f.points),
          backgroundColor: d.map((f) => (f.points >= 0 ? '#2563eb' : '#ef4444')),
        },
      ],
    },
    options: { indexAxis: 'y', maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } } },
  });
}

function rocChart() {
  const d = data('roc-data');
  const canvas = document.getElementById('roc-chart');
  if (!d || !canvas || !window.Chart) return;
  const line = (label, points, color) => ({
    label,
    data: points.map((p) => ({ x: p.fpr, y: p.tpr })),
    borderColor: color,
    backgroundColor: color,
    showLine: true,
    pointRadius: 0,
  });
  new window.Chart(canvas, {
    type: 'scatter',
    data: {
      datasets: [
        line('running configs', d.current, '#616e7c'),
        line('candidate', d.candidate, '#2563eb'),
        {
          ...line(
            'chance',
            [
              { fpr: 0, tpr: 0 },
              { fpr: 1, tpr: 1 },
            ],
            '#d9e2ec',
          ),
          borderDash: [4, 4],
        },
      ],
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { min: 0, max: 1, title: { display: true, text: 'false positive rate' } },
        y: { min: 0, max: 1, title: { display: true, text: 'true positive rate' } },
      },
    },
  });
}

function words(ms) {
  const abs = Math.abs(ms);
  const d = Math.floor(abs / 86400000);
  const h = Math.floor((abs % 86400000) / 3600000);
  const m = Math.floor((abs % 3600000) / 60000);
  const parts = d
    ? [`${d} day${d === 1 ? '' : 's'}`, `${h} hour${h === 1 ? '' : 's'}`]
    : h
      ? [`${h} hour${h === 1 ? '' : 's'}`, `${m} minute${m === 1 ? '' : 's'}`]
      : [`${m} minute${m === 1 ? '' : 's'}`];
  const text = parts.filter((p) => !p.startsWith('0 ')).join(' ') || 'less than a minute';
  return ms >= 0 ? `${text} left` : `overdue by ${text}`;
}

function countdowns() {
  const els = document.querySelectorAll('.countdown[data-deadline]');
  const tick = () =>
    els.forEach((el) => {
      const t = Date.parse(el.dataset.deadline);
      if (Number.isNaN(t)) return;
      el.textContent = words(t - Date.now());
      el.classList.toggle('overdue', t < Date.now());
    });
  if (els.length) {
    tick();
    setInterval(tick, 30000);
  }
}

function uploads() {
  document.querySelectorAll('input[type=file][data-into]').forEach((input) => {
    input.addEventListener('change', async () => {
      const file = input.files && input.files[0];
      const target = input.form && input.form.elements.namedItem(input.dataset.into);
      if (file && target) target.value = await file.text();
    });
  });
}

document.addEventListener('DOMContentLoaded', () => {
  funnelChart();
  factorsChart();
  rocChart();
  countdowns();
  uploads();
});
