/* nano-org: chunked, resumable upload for the /upload page.
 *
 * Dash has no <input type=file>, so one is created here (outside the React tree) and opened by the
 * "Choose files" button; files can also be dropped on #upload-drop-zone. The chosen names and
 * sizes go to the dcc.Store "upload-selection"; the server answers with a plan in "upload-plan"
 * (clientside callback nanoorg_upload.plan below). Only when the plan has no problems are the
 * files sent, one after the other, in 8 MiB chunks to /upload/chunk/<upload_id> with the CSRF
 * token from the _csrf_token cookie. A 409 answer carries the offset the server expects: the
 * transfer resumes from there. Progress bars are updated with dash_clientside.set_props; when
 * every planned file is on the server, {upload_id, files: [{name, size, index}]} goes to the
 * dcc.Store "upload-staged".
 */
(function () {
    'use strict';

    var CHUNK = 8 * 1024 * 1024;
    var MAX_RETRIES = 5;
    var INPUT_ID = 'upload-file-input';

    var state = {
        uploadId: null,      // server-issued id of the current staged upload
        files: [],           // {index, file, name, size, status, sent, error}
        nextIndex: 0,
        plan: null,          // last plan from the server for the current selection
        nonce: 0,            // selection version; plans for older selections are ignored
        generation: 0,       // bumped on reset: running transfers of an older generation stop
        sending: false
    };

    function csrfToken() {
        var match = document.cookie.match(/(?:^|;\s*)_csrf_token=([^;]*)/);
        return match ? decodeURIComponent(match[1]) : '';
    }

    function stringifyId(id) {
        if (typeof id !== 'object') { return id; }
        var keys = Object.keys(id).sort();
        return '{' + keys.map(function (k) { return JSON.stringify(k) + ':' + JSON.stringify(id[k]); }).join(',') + '}';
    }

    function setProps(id, props) {
        // only touch components that are on the page (the user may have navigated away; a file's
        // progress bar disappears when the file is removed). Stores have no DOM node: the page's
        // own string ids exist whenever the drop zone does.
        var present = typeof id === 'object' ? !!document.getElementById(stringifyId(id)) : onUploadPage();
        if (!present) { return false; }
        try {
            if (window.dash_clientside && window.dash_clientside.set_props) {
                window.dash_clientside.set_props(id, props);
                return true;
            }
        } catch (err) {
            if (window.console) { console.warn('nano-org upload: set_props failed', err); }
        }
        return false;
    }

    function maxBytes() {
        var zone = document.getElementById('upload-drop-zone');
        var value = zone ? parseInt(zone.getAttribute('data-max-bytes') || '0', 10) : 0;
        return value > 0 ? value : Infinity;
    }

    function formatMb(bytes) { return (bytes / 1024 / 1024).toFixed(1) + ' MB'; }

    /* ---------------------------------------------------------------- selection */

    function publicFiles() {
        return state.files.map(function (f) {
            return {index: f.index, name: f.name, size: f.size, status: f.status, sent: f.sent, error: f.error || null};
        });
    }

    function pushSelection() {
        state.nonce += 1;
        state.plan = null;
        setProps('upload-staged', {data: null});
        setProps('upload-selection', {data: {files: publicFiles(), nonce: state.nonce}});
        setStatus(state.files.length ? 'Checking the file list…' : '');
    }

    function addFiles(list) {
        var limit = maxBytes();
        var added = false;
        Array.prototype.forEach.call(list || [], function (file) {
            var existing = state.files.filter(function (f) { return f.name === file.name; })[0];
            if (existing) {            // same name again: the newer file replaces the older one
                state.files.splice(state.files.indexOf(existing), 1);
            }
            var entry = {index: state.nextIndex++, file: file, name: file.name, size: file.size,
                         status: 'pending', sent: 0, error: null};
            if (file.size > limit) {   // refuse early, before any byte is sent
                entry.status = 'error';
                entry.error = 'too large: ' + formatMb(file.size) + ' (limit ' + formatMb(limit) + ')';
            }
            state.files.push(entry);
            added = true;
        });
        if (added) { pushSelection(); }
    }

    function removeFile(index) {
        state.files = state.files.filter(function (f) { return f.index !== index; });
        pushSelection();
    }

    function resetTransfers() {
        // the server no longer holds the staged files: everything must be sent again
        state.generation += 1;
        state.uploadId = null;
        state.sending = false;
        state.files.forEach(function (f) {
            if (f.status !== 'error' || !/^too large/.test(f.error || '')) {
                f.status = 'pending'; f.sent = 0; f.error = null;
            }
        });
    }

    function clearAll() {
        var id = state.uploadId;
        resetTransfers();
        state.files = [];
        if (id) {
            fetch('/upload/cancel/' + encodeURIComponent(id), {
                method: 'POST', credentials: 'same-origin',
                headers: {'X-CSRFToken': csrfToken(), 'Accept': 'application/json'}
            }).catch(function () { /* best effort: stale uploads expire on the server */ });
        }
        pushSelection();
    }

    /* ---------------------------------------------------------------- progress display */

    function setStatus(text) {
        setProps('upload-transfer-status', {children: text});
    }

    function showProgress(f) {
        var percent = f.status === 'done' ? 100 : (f.size ? Math.floor(100 * f.sent / f.size) : 0);
        var color = f.status === 'done' ? 'success' : (f.status === 'error' ? 'danger' : null);
        setProps({type: 'upload-file-progress', index: f.index},
                 {value: percent, label: percent ? percent + '%' : '', color: color});
        var text = {done: 'on the server', sending: 'sending… ' + percent + '%', pending: 'waiting'}[f.status];
        setProps({type: 'upload-file-status', index: f.index}, {children: f.status === 'error' ? f.error : text});
    }

    /* ---------------------------------------------------------------- transfer */

    function planned(f) {
        return state.plan && state.plan.ok && state.plan.send.indexOf(f.index) >= 0;
    }

    function readJson(response) {
        return response.json().catch(function () { return {}; });
    }

    function post(url, body) {
        return fetch(url, {
            method: 'POST', credentials: 'same-origin', body: body,
            headers: {'X-CSRFToken': csrfToken(), 'Content-Type': 'application/octet-stream',
                      'Accept': 'application/json'}
        });
    }

    function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

    async function startUpload() {
        var response = await post('/upload/start', null);
        var body = await readJson(response);
        if (!response.ok || !body.upload_id) {
            throw new Error(body.error || ('the server refused the upload (' + response.status + ')'));
        }
        return body.upload_id;
    }

    async function sendFile(f, generation) {
        // a transfer of an older generation (the page was re-entered, the selection reset) never
        // touches a file: the newer generation's pump owns it
        if (generation !== state.generation) { return; }
        var offset = f.sent || 0;
        var retries = 0;
        f.status = 'sending';
        showProgress(f);
        do {
            if (generation !== state.generation) { return; }
            var end = Math.min(offset + CHUNK, f.size);
            var last = end >= f.size ? 1 : 0;
            var url = '/upload/chunk/' + encodeURIComponent(state.uploadId) + '?index=' + f.index +
                '&offset=' + offset + '&size=' + f.size + '&last=' + last + '&name=' + encodeURIComponent(f.name);
            var response;
            try {
                response = await post(url, f.file.slice(offset, end));
            } catch (err) {                     // network trouble: wait and resume from the server's offset
                if (++retries > MAX_RETRIES) { throw new Error('network error while sending ' + f.name); }
                await sleep(500 * retries);
                continue;
            }
            var body = await readJson(response);
            if (generation !== state.generation) { return; }
            if (response.status === 409) {
                if (++retries > MAX_RETRIES) { throw new Error(body.error || 'the server refused the chunk'); }
                if (typeof body.expected === 'number') {
                    offset = body.expected;      // resume where the server is
                    f.sent = offset;
                    if (offset >= f.size && /completely/.test(body.error || '')) { break; }
                } else {
                    await sleep(500 * retries);
                }
                continue;
            }
            if (!response.ok) {
                throw new Error(body.error || ('the server answered ' + response.status));
            }
            retries = 0;
            offset = end;
            f.sent = offset;
            showProgress(f);
            if (last) { break; }
        } while (offset <= f.size);
        f.status = 'done';
        f.sent = f.size;
        showProgress(f);
    }

    function finishIfReady() {
        if (!state.plan || !state.plan.ok) { return; }
        var wanted = state.files.filter(planned);
        var failed = wanted.filter(function (f) { return f.status === 'error'; });
        var done = wanted.filter(function (f) { return f.status === 'done'; });
        if (failed.length) {
            setStatus('Some files could not be sent (see the list). Remove them or press Clear and choose again.');
            setProps('upload-staged', {data: null});
        } else if (wanted.length && done.length === wanted.length) {
            setStatus('All ' + done.length + ' file(s) are on the server. Fill in the form and press Upload.');
            setProps('upload-staged', {data: {
                upload_id: state.uploadId,
                files: done.map(function (f) { return {name: f.name, size: f.size, index: f.index}; })
            }});
        }
    }

    async function pump() {
        if (state.sending) { return; }
        state.sending = true;
        var generation = state.generation;
        try {
            for (;;) {
                if (generation !== state.generation) { return; }
                var next = state.files.filter(function (f) { return f.status === 'pending' && planned(f); })[0];
                if (!next) { break; }
                var position = state.files.filter(planned).indexOf(next) + 1;
                setStatus('Sending file ' + position + ' of ' + state.files.filter(planned).length + ': ' + next.name + '…');
                try {
                    if (!state.uploadId) {
                        var uploadId = await startUpload();
                        if (generation !== state.generation) { return; }
                        state.uploadId = uploadId;
                    }
                    await sendFile(next, generation);
                } catch (err) {
                    next.status = 'error';
                    next.error = err.message || String(err);
                    showProgress(next);
                }
            }
            if (generation === state.generation) { finishIfReady(); }
        } finally {
            if (generation === state.generation) { state.sending = false; }
        }
    }

    /* ---------------------------------------------------------------- Dash hooks */

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        nanoorg_upload: {
            // upload-plan changed: remember it (if it is for the current selection) and send files
            plan: function (plan) {
                var noUpdate = window.dash_clientside.no_update;
                if (!plan || plan.nonce !== state.nonce) { return noUpdate; }
                state.plan = plan;
                if (!plan.ok) {
                    if (state.files.length) { setStatus(''); }
                } else {
                    pump();
                }
                return noUpdate;
            },
            // upload-consumed: the server used or removed the staged files of an upload
            consumed: function (info) {
                var noUpdate = window.dash_clientside.no_update;
                if (!info || !info.upload_id || info.upload_id !== state.uploadId) { return noUpdate; }
                resetTransfers();
                if (info.outcome === 'done') {
                    state.files = [];
                }
                pushSelection();
                if (info.outcome !== 'done') {
                    setStatus('The staged files were removed. Fix the problem; the files are sent again automatically.');
                }
                return noUpdate;
            }
        }
    });

    // debugging and tests
    window.nanoorgUpload = {state: state, addFiles: addFiles, clear: clearAll};

    /* ---------------------------------------------------------------- DOM wiring (event delegation) */

    function fileInput() {
        var input = document.getElementById(INPUT_ID);
        if (!input) {
            input = document.createElement('input');
            input.type = 'file';
            input.multiple = true;
            input.id = INPUT_ID;
            input.setAttribute('aria-label', 'Choose detection and ROI files');
            input.style.display = 'none';
            input.addEventListener('change', function () {
                addFiles(input.files);
                input.value = '';
            });
            document.body.appendChild(input);
        }
        return input;
    }

    function onUploadPage() { return !!document.getElementById('upload-drop-zone'); }

    document.addEventListener('click', function (event) {
        var target = event.target;
        if (!target || !target.closest) { return; }
        if (target.closest('#upload-choose')) {
            event.preventDefault();
            fileInput().click();
            return;
        }
        if (target.closest('#upload-clear')) { event.preventDefault(); clearAll(); return; }
        var remove = target.closest('[data-upload-remove]');
        if (remove) {
            event.preventDefault();
            removeFile(parseInt(remove.getAttribute('data-upload-remove'), 10));
        }
    });

    function zoneOf(event) {
        return event.target && event.target.closest ? event.target.closest('#upload-drop-zone') : null;
    }

    ['dragenter', 'dragover'].forEach(function (type) {
        document.addEventListener(type, function (event) {
            if (!onUploadPage()) { return; }
            event.preventDefault();        // never let the browser open a dropped file
            var zone = zoneOf(event);
            if (zone) { zone.classList.add('dragover'); event.dataTransfer.dropEffect = 'copy'; }
        });
    });
    document.addEventListener('dragleave', function (event) {
        var zone = zoneOf(event);
        if (zone && !zone.contains(event.relatedTarget)) { zone.classList.remove('dragover'); }
    });
    document.addEventListener('drop', function (event) {
        if (!onUploadPage()) { return; }
        event.preventDefault();
        var zone = zoneOf(event);
        if (!zone) { return; }
        zone.classList.remove('dragover');
        if (event.dataTransfer && event.dataTransfer.files) { addFiles(event.dataTransfer.files); }
    });

    // the input exists from the start (tests set files on it directly)
    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', fileInput);
    } else {
        fileInput();
    }

    // When the page is (re)entered its components start empty: ask the server which files of the
    // current upload it still holds, then show the selection again.
    async function resync() {
        if (state.uploadId) {
            try {
                var response = await fetch('/upload/status/' + encodeURIComponent(state.uploadId),
                                           {credentials: 'same-origin'});
                var body = await readJson(response);
                var onServer = {};
                (body.files || []).forEach(function (row) { onServer[row.index] = row; });
                if (response.ok && !(body.files || []).length) {
                    // the upload was used (or cancelled) while the page was not shown: do not send it again
                    resetTransfers();
                    state.files = [];
                    pushSelection();
                    setStatus('Your previous upload is no longer waiting on the server: it was processed or ' +
                              'cancelled while you were on another page (look for it in the databank). ' +
                              'Choose files to upload again.');
                    return;
                }
                if (!response.ok) {
                    resetTransfers();
                } else {
                    state.files.forEach(function (f) {
                        var row = onServer[f.index];
                        if (f.status === 'error') { return; }
                        if (row && row.complete && row.size === f.size) { f.status = 'done'; f.sent = f.size; }
                        else { f.status = 'pending'; f.sent = row ? row.received : 0; }
                    });
                }
            } catch (err) {
                resetTransfers();
            }
        }
        state.sending = false;
        state.generation += 1;
        pushSelection();
    }

    // Re-entry means: the drop zone was on the page, went away (another page) and is back. Its
    // first appearance is not a re-entry, even when files were added before this check first saw
    // it (a resync then would restart the transfers already running).
    var lastZone = null;
    var leftPage = false;
    setInterval(function () {
        var zone = document.getElementById('upload-drop-zone');
        if (zone && zone !== lastZone) {
            if (leftPage && state.files.length) { resync(); }
            leftPage = false;
            lastZone = zone;
        }
        if (!zone) {
            if (lastZone !== null) { leftPage = true; }
            lastZone = null;
        }
    }, 400);
})();
