/* Cell renderers for the databank grid (dash-ag-grid looks them up by name in
   window.dashAgGridComponentFunctions). Values are rendered as text by React, never as HTML. */
(function () {
    var funcs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

    function navigate(event, href) {
        // Same behaviour as dcc.Link: client-side navigation for plain left clicks,
        // browser default (new tab, ...) with modifier keys.
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
            return;
        }
        event.preventDefault();
        window.history.pushState({}, "", href);
        window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
        window.scrollTo(0, 0);
    }

    funcs.NanoorgDatasetLink = function (props) {
        if (!props.data || props.data.id === undefined || props.data.id === null) {
            return null;   // block not loaded yet
        }
        var href = "/dataset/" + encodeURIComponent(String(props.data.id));
        return React.createElement("a", {
            href: href,
            className: "nanoorg-dataset-link",
            onClick: function (event) { navigate(event, href); }
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
