// MathJax 2.7, shipped with the site (docs/_hooks/site.py; the combined TeX-AMS-MML_HTMLorMML-full
// configuration with the STIX web fonts, so nothing is fetched from elsewhere): \( \) and \[ \] from
// pymdownx.arithmatex in the guides and the API reference; $ $ and $$ $$ in the exercises' notebook cells.
window.MathJax = {
  tex2jax: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  "HTML-CSS": { availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null },
  showMathMenu: false,
  messageStyle: "none",
};
