// The web view's one script (no libraries, nothing loaded from elsewhere):
// local times, opening a job from the DAG, and following a running run
// over server-sent events (/api/runs/RUN/events) without a reload.
(function () {
  'use strict';

  // Times are written in UTC by the server; show them in local time.
  document.querySelectorAll('time[datetime]').forEach(function (t) {
    var ms = Number(t.getAttribute('datetime'));
    if (!isNaN(ms)) {
      t.title = t.textContent;
      t.textContent = new Date(ms).toLocaleString();
    }
  });

  var body = document.body;
  if (body.dataset.page !== 'run') return;
  var run = body.dataset.run;
  var dag = document.getElementById('dag');

  function nameOf(node) {
    var title = node.querySelector('title');
    return title ? title.textContent.split('\n')[0] : null;
  }

  // A node's title holds the job's name on its first line.
  dag.addEventListener('click', function (e) {
    var node = e.target.closest('.n, rect.c');
    var name = node && nameOf(node);
    if (name) location.href = '/runs/' + run + '/jobs/' + encodeURIComponent(name);
  });

  function dur(ms) {
    ms = Math.max(0, ms);
    if (ms < 1000) return ms + 'ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + 's';
    if (ms < 3600000) return Math.floor(ms / 60000) + 'm' + String(Math.floor(ms / 1000) % 60).padStart(2, '0') + 's';
    return Math.floor(ms / 3600000) + 'h' + String(Math.floor(ms / 60000) % 60).padStart(2, '0') + 'm';
  }

  function note(status, started, ended) {
    var took = started != null && ended != null ? dur(ended - started) : null;
    if (status === 'executed') return took ? 'done ' + took : 'done';
    if (status === 'failed' && took) return 'failed ' + took;
    return status;
  }

  function cls(state) { return 's-' + state.replace(/[^A-Za-z0-9]/g, '-'); }

  function setState(el, state) {
    Array.prototype.slice.call(el.classList).forEach(function (c) {
      if (c.indexOf('s-') === 0) el.classList.remove(c);
    });
    el.classList.add(cls(state));
  }

  function badge(state) {
    var b = document.createElement('span');
    b.className = 'badge ' + cls(state);
    b.textContent = state === 'executed' ? 'done' : state;
    return b;
  }

  function apply(d) {
    d.jobs.forEach(function (j) {
      var el = document.getElementById('n' + j[0]);
      if (!el) return;
      setState(el, j[1]);
      var text = note(j[1], j[2], j[3]);
      var title = el.querySelector('title');
      if (title) title.textContent = nameOf(el) + '\n' + text;
      var d2 = el.querySelector('text.d');
      if (d2) d2.textContent = text;
    });
    var status = document.getElementById('run-status');
    if (status) status.replaceChildren(badge(d.run.status));
    ['executed', 'cached', 'failed', 'skipped'].forEach(function (k) {
      var c = document.getElementById('c-' + k);
      if (c) c.textContent = d.run.counts[k];
    });
    var took = document.getElementById('run-took');
    var started = document.querySelector('.meta time');
    if (took && started && d.run.ended_ms != null) {
      took.textContent = dur(d.run.ended_ms - Number(started.getAttribute('datetime')));
    }
  }

  var status = document.getElementById('run-status');
  if (!status || status.textContent.trim() !== 'running') return;
  var events = new EventSource('/api/runs/' + encodeURIComponent(run) + '/events');
  events.addEventListener('state', function (e) { apply(JSON.parse(e.data)); });
  // The run ended: nothing more will change (and the stream must not reconnect).
  events.addEventListener('end', function () { events.close(); body.dataset.live = 'ended'; });
  events.addEventListener('fault', function (e) { events.close(); body.dataset.live = 'fault: ' + e.data; });
  body.dataset.live = 'following';
})();
