/* Client-side navigation for links rendered inside AG Grid cells (databank, similarity results):
   like dcc.Link, plain left clicks stay in the single-page app; modifier keys keep the browser
   default (new tab, ...). */
window.nanoorgNavigate = function (event, href) {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
        return;
    }
    event.preventDefault();
    window.history.pushState({}, "", href);
    window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
    window.scrollTo(0, 0);
};
