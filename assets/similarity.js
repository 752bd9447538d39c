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
