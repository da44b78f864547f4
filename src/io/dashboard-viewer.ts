/**
 * The exported dashboard folder's viewer (./dashboard.ts writes it inline into index.html): plain
 * JavaScript and CSS, no framework, nothing fetched. It reads the globals the data files set
 * (`SAE_DASH.meta`, `.pieces`, `.list`, and `SAE_DASH['block-B']` loaded on demand by a <script>
 * tag, since a page opened from file:// cannot fetch() files) and shows the latent list (search by
 * id or explanation, sort by any column) and one latent's dashboard; `#ID` in the URL opens latent ID.
 * Every text from the data goes in through textContent, never as HTML.
 */

export const VIEWER_CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{padding:10px 16px;background:#fff;border-bottom:1px solid #dde1e7}
header h1{font-size:17px;margin:0 0 2px}
.muted{color:#687385}.small{font-size:12px}
main{display:flex;gap:16px;padding:12px 16px;align-items:flex-start}
#side{flex:0 0 430px}#detail{flex:1;min-width:0;background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:12px}
#search{width:100%;box-sizing:border-box;padding:5px 8px;margin-bottom:6px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:12px}
th,td{padding:3px 6px;border-bottom:1px solid #eceef2;text-align:right;white-space:nowrap}
th:first-child,td:first-child,td.ex{text-align:left}
td.ex{max-width:140px;overflow:hidden;text-overflow:ellipsis}
th button{all:unset;cursor:pointer;font-weight:600}
tbody tr{cursor:pointer}tbody tr:hover{background:#eef3fb}tr.sel{background:#dce8fb}
.pager{display:flex;gap:8px;align-items:center;margin-top:6px}
h2{font-size:16px;margin:0 0 4px}h3{font-size:13px;margin:14px 0 4px}
.ctx{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;margin:2px 0;display:flex;gap:8px}
.ctx .v{flex:0 0 56px;text-align:right;color:#687385}
.tok{border-radius:2px}.tok.on{outline:1.5px solid #c0392b}.tok.na{color:#9aa3b0;text-decoration:underline dotted}
.cols{display:flex;gap:24px}.cols ol{margin:0;padding-left:20px;font-family:ui-monospace,monospace;font-size:12px}
svg{display:block;width:100%;height:110px}
code{background:#eef0f3;padding:0 3px;border-radius:3px}
`;

export const VIEWER_JS = String.raw`
(function () {
  'use strict';
  var D = window.SAE_DASH || {};
  var meta = D.meta, list = D.list, pieces = D.pieces || [];
  var app = document.getElementById('app');
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function num(v, p) { return v === null || v === undefined || !isFinite(v) ? '—' : Number(v).toPrecision(p || 3); }
  function pct(v) { return v > 0 ? num(v * 100, 3) + '%' : 'never'; }
  if (!meta || !list) { app.textContent = 'The data files (data/*.js) are missing beside index.html.'; return; }

  var COLS = [['latent', 0], ['density', 1], ['mean act', 2], ['max act', 3], ['expl. F1', 4]];
  var PAGE = 50;
  var st = { q: '', col: 1, desc: true, page: 0 };
  var blocks = {};

  var head = el('header');
  head.appendChild(el('h1', null, meta.title));
  head.appendChild(el('div', 'muted small',
    meta.N + ' latents · d = ' + meta.d + ' · ' + meta.activation + ' k = ' + meta.k + ' · ' + meta.rows +
    ' evaluated rows' + (meta.dataset ? ' of ' + meta.dataset : '') +
    (meta.model ? ' · logit effects through ' + meta.model : ' · no language model loaded: no logit effects')));
  var main = el('main');
  var side = el('div'); side.id = 'side';
  var search = el('input'); search.id = 'search'; search.placeholder = 'search id or explanation';
  var count = el('div', 'muted small');
  var table = el('table');
  var pager = el('div', 'pager');
  var detail = el('div'); detail.id = 'detail'; detail.textContent = 'Click a latent to open its dashboard.';
  side.appendChild(search); side.appendChild(count); side.appendChild(table); side.appendChild(pager);
  main.appendChild(side); main.appendChild(detail);
  app.appendChild(head); app.appendChild(main);

  function val(r) { var v = r[st.col]; return v === null || v === undefined ? -Infinity : v; }
  function rows() {
    var q = st.q.trim().toLowerCase();
    var out = list.filter(function (r) {
      if (!q) return true;
      if (/^\d+$/.test(q)) return String(r[0]).indexOf(q) === 0;
      return (r[5] || '').toLowerCase().indexOf(q) >= 0;
    });
    var s = st.desc ? -1 : 1;
    return out.sort(function (a, b) { return s * (val(a) - val(b)) || a[0] - b[0]; });
  }
  function selected() { var m = /^#(\d+)$/.exec(location.hash); return m ? Number(m[1]) : null; }

  function renderList() {
    var all = rows();
    var pages = Math.max(1, Math.ceil(all.length / PAGE));
    st.page = Math.min(st.page, pages - 1);
    count.textContent = all.length + ' latents';
    table.textContent = '';
    var tr = el('tr');
    COLS.forEach(function (c) {
      var th = el('th'); var b = el('button', null, c[0] + (st.col === c[1] ? (st.desc ? ' ▾' : ' ▴') : ''));
      b.setAttribute('data-sort', c[0]);
      b.onclick = function () { st.desc = st.col === c[1] ? !st.desc : c[1] !== 0; st.col = c[1]; st.page = 0; renderList(); };
      th.appendChild(b); tr.appendChild(th);
    });
    tr.appendChild(el('th', null, 'explanation'));
    var thead = el('thead'); thead.appendChild(tr); table.appendChild(thead);
    var tb = el('tbody');
    var sel = selected();
    all.slice(st.page * PAGE, (st.page + 1) * PAGE).forEach(function (r) {
      var row = el('tr', r[0] === sel ? 'sel' : null);
      row.setAttribute('data-id', r[0]);
      row.appendChild(el('td', null, '#' + r[0]));
      row.appendChild(el('td', null, pct(r[1])));
      row.appendChild(el('td', null, num(r[2])));
      row.appendChild(el('td', null, num(r[3])));
      row.appendChild(el('td', null, num(r[4], 2)));
      var ex = el('td', 'ex', r[5] || ''); ex.title = r[5] || ''; row.appendChild(ex);
      row.onclick = function () { location.hash = '#' + r[0]; };
      tb.appendChild(row);
    });
    table.appendChild(tb);
    pager.textContent = '';
    var prev = el('button', null, '‹ prev'); prev.disabled = st.page === 0;
    prev.onclick = function () { st.page--; renderList(); };
    var next = el('button', null, 'next ›'); next.disabled = st.page >= pages - 1;
    next.onclick = function () { st.page++; renderList(); };
    pager.appendChild(prev); pager.appendChild(el('span', 'muted small', 'page ' + (st.page + 1) + ' / ' + pages)); pager.appendChild(next);
  }

  function loadBlock(b, done) {
    var key = 'block-' + b;
    if (D[key]) return done(D[key]);
    var s = document.createElement('script');
    s.src = 'data/' + key + '.js';
    s.onload = function () { done(D[key]); };
    s.onerror = function () { detail.textContent = 'Could not load data/' + key + '.js beside index.html.'; };
    document.head.appendChild(s);
  }

  function histogram(h) {
    var NS = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(NS, 'svg');
    var n = h.counts.length, max = Math.max.apply(null, h.counts.concat([1]));
    svg.setAttribute('viewBox', '0 0 ' + n * 10 + ' 100');
    svg.setAttribute('preserveAspectRatio', 'none');
    h.counts.forEach(function (c, i) {
      var r = document.createElementNS(NS, 'rect');
      var hh = (90 * c) / max;
      r.setAttribute('x', i * 10 + 1); r.setAttribute('width', 8);
      r.setAttribute('y', 100 - hh); r.setAttribute('height', hh); r.setAttribute('fill', '#4a7fd4');
      var t = document.createElementNS(NS, 'title');
      t.textContent = num(h.edges[i]) + '–' + num(h.edges[i + 1]) + ': ' + c + ' rows';
      r.appendChild(t); svg.appendChild(r);
    });
    return svg;
  }

  function context(c, max) {
    var line = el('div', 'ctx');
    line.appendChild(el('span', 'v', num(c[1])));
    var text = el('span', 'toks');
    if (c[3].length === 0) text.textContent = 'row ' + c[0] + ' (no token ids)';
    c[3].forEach(function (p, j) {
      var a = c[4][j];
      var t = el('span', 'tok' + (j === c[2] ? ' on' : '') + (a === null ? ' na' : ''), pieces[p]);
      t.title = a === null ? 'not evaluated' : 'activation ' + num(a);
      if (a > 0 && max > 0) t.style.backgroundColor = 'rgba(255,140,0,' + Math.min(1, a / max).toFixed(3) + ')';
      text.appendChild(t);
    });
    line.appendChild(text);
    return line;
  }

  function logits(lg) {
    var box = el('div', 'cols'); box.id = 'logits';
    [['raises', lg.up, 'logits-up'], ['lowers', lg.down, 'logits-down']].forEach(function (s) {
      var col = el('div'); col.appendChild(el('div', 'small', 'Logits it ' + s[0]));
      var ol = el('ol'); ol.id = s[2];
      s[1].forEach(function (e) { ol.appendChild(el('li', null, JSON.stringify(pieces[e[0]]) + '  ' + num(e[2]))); });
      col.appendChild(ol); box.appendChild(col);
    });
    return box;
  }

  function renderLatent(L) {
    detail.textContent = '';
    detail.setAttribute('data-latent', L.id);
    detail.appendChild(el('h2', null, 'Latent #' + L.id));
    detail.appendChild(el('div', 'muted small', 'density ' + pct(L.freq) + ' (' + L.fired + ' of ' + meta.rows +
      ' rows) · mean activation ' + num(L.meanAct) + ' · max ' + num(L.maxAct)));
    var ex = el('p', 'small');
    if (L.expl) {
      ex.appendChild(document.createTextNode('N2G explanation: '));
      ex.appendChild(el('code', null, L.expl.text));
      ex.appendChild(document.createTextNode(' · precision ' + num(L.expl.precision, 2) + ' · recall ' +
        num(L.expl.recall, 2) + ' · F1 ' + num(L.expl.f1, 2)));
    } else ex.textContent = meta.tokens ? 'No explanation (the latent never fired in the explanation rows).' : 'No explanation (the dataset has no token ids).';
    detail.appendChild(ex);
    detail.appendChild(el('h3', null, 'Nonzero activations'));
    detail.appendChild(histogram(L.hist));
    detail.appendChild(el('div', 'muted small', 'activation 0 … ' + num(L.maxAct) + ', ' + L.hist.counts.length +
      ' bins (hover a bar for its rows)'));
    detail.appendChild(el('h3', null, 'Logit effects (decoder direction → final norm → unembedding)'));
    if (L.logits) detail.appendChild(logits(L.logits));
    else detail.appendChild(el('div', 'muted small', 'No language model was loaded for this dataset.'));
    var top = el('div'); top.id = 'top';
    detail.appendChild(el('h3', null, 'Top activations'));
    L.top.forEach(function (c) { top.appendChild(context(c, L.maxAct)); });
    if (!L.top.length) top.textContent = 'Never fired on the evaluated rows.';
    detail.appendChild(top);
    var bands = el('div'); bands.id = 'bands';
    L.bands.slice().reverse().forEach(function (b) {
      if (!b.count) return;
      bands.appendChild(el('h3', null, 'Quantile ' + b.qLo.toFixed(2) + '–' + b.qHi.toFixed(2) + ' · activation ' +
        num(b.lo) + '–' + num(b.hi) + ' · ' + b.count + ' rows'));
      b.ctx.forEach(function (c) { bands.appendChild(context(c, L.maxAct)); });
    });
    detail.appendChild(bands);
  }

  function renderDetail() {
    var id = selected();
    if (id === null || id >= meta.N) return;
    detail.textContent = 'loading latent #' + id + '…';
    loadBlock(Math.floor(id / meta.blockLatents), function (blk) {
      if (selected() === id) renderLatent(blk[id % meta.blockLatents]);
    });
  }

  search.oninput = function () { st.q = search.value; st.page = 0; renderList(); };
  window.addEventListener('hashchange', function () { renderList(); renderDetail(); });
  renderList();
  renderDetail();
})();
`;
