/* Similarity results grid (dataset page, search-with-your-own-file page): a dataset link cell
   renderer and a comparator that keeps rows without a score last in both sort directions.
   Values are rendered as text by React, never as HTML. */
(function () {
    var cells = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});
    var funcs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

    cells.NanoorgSimilarLink = function (props) {
        if (!props.data || props.data.dataset_id === undefined || props.data.dataset_id === null) {
            return props.value === undefined ? null : String(props.value);
        }
        var href = "/dataset/" + encodeURIComponent(String(props.data.dataset_id));
        return React.createElement("a", {
            href: href,
            className: "nanoorg-similar-link",
            onClick: function (event) { window.nanoorgNavigate(event, href); }
        }, props.value);
    };

    funcs.nanoorgNullsLast = function (valueA, valueB, nodeA, nodeB, isDescending) {
        var missingA = valueA === null || valueA === undefined;
        var missingB = valueB === null || valueB === undefined;
        if (missingA && missingB) { return 0; }
        // AG Grid reverses the comparator for descending sorts: flip so missing stays last.
        if (missingA) { return isDescending ? -1 : 1; }
        if (missingB) { return isDescending ? 1 : -1; }
        return valueA - valueB;
    };
})();

/* Compare page: the picked datasets are written into the address (?ids=3,5,8) in place, so the
   comparison can be shared as a link and survives reload and Back. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    nanoorg_compare: {
        ids_to_url: function (picked) {
            const params = new URLSearchParams(window.location.search);
            const value = (picked || []).join(",");
            if (value) {
                params.set("ids", value);
            } else {
                params.delete("ids");
            }
            const query = params.toString();
            const target = window.location.pathname + (query ? "?" + query : "");
            if (target !== window.location.pathname + window.location.search) {
                window.history.replaceState(window.history.state, "", target);
            }
            return value;
        }
    }
});
