// File viewer (/file/<id>): clientside callbacks (wired in callbacks/viewer.py).
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    nanoorg_viewer: {
        // Turn a relayout event into the visible window (after Plotly applied the aspect constraint)
        // and the plot area's size in pixels, so the server renders exactly what is seen.
        view_request: function (relayout) {
            const nu = window.dash_clientside.no_update;
            if (!relayout) { return nu; }
            const keys = Object.keys(relayout);
            // zoom, pan, reset, and the first autosize (the server rendered the first image before it
            // knew the plot area's size and the ranges Plotly settles on for the equal aspect ratio)
            if (!keys.some(k => k.startsWith('xaxis.') || k.startsWith('yaxis.') || k === 'autosize')) { return nu; }
            const host = document.getElementById('viewer-graph');
            const gd = host && (host.classList.contains('js-plotly-plot') ? host : host.querySelector('.js-plotly-plot'));
            if (!gd || !gd._fullLayout) { return nu; }
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            return {x_range: xa.range.slice(), y_range: ya.range.slice(),
                    width: Math.round(xa._length), height: Math.round(ya._length), t: Date.now()};
        },
        // "Export PNG": the view as Plotly renders it, at twice the screen resolution.
        export_png: function (n, name) {
            if (!n) { return window.dash_clientside.no_update; }
            const host = document.getElementById('viewer-graph');
            const gd = host && (host.classList.contains('js-plotly-plot') ? host : host.querySelector('.js-plotly-plot'));
            if (gd && window.Plotly) {
                window.Plotly.downloadImage(gd, {format: 'png', filename: name || 'nano-org-view', scale: 2});
            }
            return n;
        }
    }
});
