// bgflow serve: live updates. The page already holds the current state; this script
// listens to /api/events (server-sent events) and fetches the page's live part again
// when an event of interest arrives, follows the shown step's log from its offset, and
// sends the stop request with the token the page carries.
(function () {
  'use strict';
  var meta = document.querySelector('meta[name="bgflow-token"]');
  var token = meta ? meta.getAttribute('content') : '';
  var conn = document.getElementById('conn');
  var live = document.getElementById('live');
  var log = document.getElementById('logtext');

  function api(path, opts) {
    opts = opts || {};
    opts.headers = Object.assign({ 'X-Bgflow-Token': token }, opts.headers || {});
    opts.credentials = 'same-origin';
    return fetch(path, opts);
  }

  // One fetch of the live part at a time; an event meanwhile asks for one more.
  var busy = false, again = false;
  function refresh() {
    if (!live) return;
    if (busy) { again = true; return; }
    busy = true;
    api(live.getAttribute('data-src')).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (html !== null) live.innerHTML = html;
    }).catch(function () {}).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }

  // The log of the shown step, from where the page left it.
  var following = false;
  function followLog() {
    if (!log || following) return;
    following = true;
    var url = '/api/runs/' + encodeURIComponent(log.getAttribute('data-run')) + '/logs/' +
      encodeURIComponent(log.getAttribute('data-step')) + '?offset=' + log.getAttribute('data-offset');
    api(url).then(function (r) { return r.ok ? r.json() : null; }).then(function (p) {
      if (!p) return;
      if (p.text) {
        var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.textContent += p.text;
        if (log.textContent.length > 400000) log.textContent = log.textContent.slice(-300000);
        if (atEnd) log.scrollTop = log.scrollHeight;
      }
      log.setAttribute('data-offset', String(p.next_offset));
      log.setAttribute('data-state', p.state);
      if (p.truncated) setTimeout(followLog, 0);
    }).catch(function () {}).then(function () { following = false; });
  }
  if (log) {
    log.scrollTop = log.scrollHeight;
    setInterval(function () {
      var st = log.getAttribute('data-state');
      if (st === 'running' || st === 'pending') followLog();
    }, 1000);
  }

  if (live && window.EventSource) {
    var run = live.getAttribute('data-run');
    var src = '/api/events?after=' + encodeURIComponent(live.getAttribute('data-after') || '0');
    if (run) src += '&run=' + encodeURIComponent(run);
    var es = new EventSource(src);
    es.onopen = function () { if (conn) conn.className = 'conn on'; };
    es.onerror = function () { if (conn) conn.className = 'conn off'; };
    es.onmessage = function () {
      refresh();
      followLog();
    };
  }

  document.addEventListener('click', function (ev) {
    var b = ev.target.closest ? ev.target.closest('button[data-stop]') : null;
    if (!b) return;
    var id = b.getAttribute('data-stop');
    b.disabled = true;
    var status = document.getElementById('stop-status');
    if (status) status.textContent = 'stopping…';
    api('/api/runs/' + encodeURIComponent(id) + '/stop', { method: 'POST' }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, j: j }; });
    }).then(function (res) {
      var s = document.getElementById('stop-status');
      if (s) s.textContent = res.ok ? ('run ' + res.j.state) : ('not stopped: ' + res.j.error);
      if (!res.ok) b.disabled = false;
      refresh();
    }).catch(function (e) {
      var s = document.getElementById('stop-status');
      if (s) s.textContent = 'not stopped: ' + e;
      b.disabled = false;
    });
  });
})();
