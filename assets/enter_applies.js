/* Enter applies a typed number everywhere (issue 12, item 6).
 *
 * Dash 4 sliders (dcc.Slider / dcc.RangeSlider, updatemode "mouseup") have a number box that sets
 * the slider's value only on blur, so a value typed and confirmed with Enter stayed stale until Tab
 * or a click. Enter in such a box now blurs it (which applies the value, exactly as Tab does) and
 * gives the focus back, so the user can keep typing.
 */
(function () {
    document.addEventListener('keydown', function (event) {
        const box = event.target;
        if (event.key !== 'Enter' || !box || box.tagName !== 'INPUT' || box.type !== 'number') {
            return;
        }
        if (!box.classList.contains('dash-range-slider-input')) {
            return;           // dcc.Input / dbc.Input handle Enter themselves (debounce, n_submit)
        }
        event.preventDefault();
        box.blur();
        box.focus();
    }, true);
})();
