/* Cell renderers for the databank grid (dash-ag-grid looks them up by name in
   window.dashAgGridComponentFunctions). Values are rendered as text by React, never as HTML. */
(function () {
    var funcs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

    funcs.NanoorgDatasetLink = function (props) {
        if (!props.data || props.data.id === undefined || props.data.id === null) {
            return null;   // block not loaded yet
        }
        var href = "/dataset/" + encodeURIComponent(String(props.data.id));
        return React.createElement("a", {
            href: href,
            className: "nanoorg-dataset-link",
            onClick: function (event) { window.nanoorgNavigate(event, href); }
        }, props.value);
    };

    var BADGES = {public: "text-bg-success", shared: "text-bg-info", private: "text-bg-secondary"};

    funcs.NanoorgVisibilityBadge = function (props) {
        if (!props.value) {
            return null;
        }
        return React.createElement("span", {
            className: "badge " + (BADGES[props.value] || "text-bg-secondary")
        }, String(props.value));
    };
})();

/* The databank's search, sort and filters live in the URL (?q=&sort=&f=), replaced in place on every
   grid request, so Back, reload and shared links give the same table (pages/databank.py reads them). */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    nanoorg_databank: {
        url_state: function (request, search) {
            if (!request) {
                return window.dash_clientside.no_update;
            }
            const params = new URLSearchParams();
            if (search && search.trim()) {
                params.set("q", search.trim());
            }
            const sort = (request.sortModel || []).map(function (s) { return s.colId + ":" + s.sort; }).join(",");
            if (sort) {
                params.set("sort", sort);
            }
            const filters = request.filterModel || {};
            if (Object.keys(filters).length) {
                params.set("f", JSON.stringify(filters));
            }
            const query = params.toString();
            const target = window.location.pathname + (query ? "?" + query : "");
            if (target !== window.location.pathname + window.location.search) {
                window.history.replaceState(window.history.state, "", target);
            }
            return query;
        }
    }
});
