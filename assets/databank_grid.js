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
