"""The course's references that a student's function must not call while its tests run.

A test cell of a master says

    from refguard import forbid  # replaced by assignments/build.py
    ...
    want = linear.closest_solution(X, y, theta0)      # the reference, before the guard
    with forbid(closest_solution):
        got = closest_solution(X, y, theta0)          # the student's function, guarded

``assignments/build.py`` replaces the import line of every test by an inlined copy of
:func:`make_forbid` with the names that :data:`FORBIDDEN` lists for the test's question, so the
test files that otter writes (and that the autograder and ``grader.check`` run) need neither this
file nor anything the student can edit. While the ``with`` block runs, each listed function is
replaced, in its module and in the student function's globals (``from ntklib.linear import
closest_solution`` is caught too), by one that raises and says why.

Names are written as ``module.attribute`` with the post-issue-13 module layout first; a name that
does not resolve in the installed ntklib (an older or newer layout) is skipped, and
``tests/test_assignments.py`` checks that every question's list resolves at least one name.
To follow a rename, edit this table only.
"""

from __future__ import annotations

#: {assignment: {question: [references the student's functions must not call]}}
FORBIDDEN = {
    "a1_least_squares": {
        "q1": ["ntklib.linear.closest_solution"],
        "q2": ["ntklib.linear.linear_rate"],
        # the Jacobian in closed form: no autodiff, and not the library's constants
        "q3": ["ntklib.nonlinear.jacobian", "jax.jacfwd", "jax.jacrev", "jax.jacobian",
               "ntklib.os18.linear_plus_bounds", "ntklib.nonlinear.linear_plus_bounds"],
    },
    "a2_one_hidden_layer_ntk": {
        "q1": ["ntklib.shallow.apply", "ntklib.shallow.ShallowNet.apply"],
        "q2": ["ntklib.ntk.structured_ntk", "ntklib.ntk.empirical_ntk", "ntklib.ntk.gram"],
        "q3": ["ntklib.ntk.lambda0"],
    },
    "a3_gram_gauss_newton": {
        "q1": ["ntklib.ggn.ggn_step", "ntklib.ggn.ggn", "ntklib.ggn.ggn_minibatch"],
    },
    "a4_adversarial_training": {
        "q1": ["ntklib.adversarial.project"],
        "q2": ["ntklib.adversarial.pgd", "ntklib.adversarial.fgsm"],
        # adversarial training with the student's own PGD inside the loop
        "q6": ["ntklib.adversarial.adversarial_training", "ntklib.adversarial.pgd"],
    },
}


def make_forbid(names):
    """A context manager ``forbid(*functions)`` that blocks ``names`` while it is open."""
    import contextlib
    import importlib

    def resolve(name):
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):  # the longest importable module prefix
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:-1]:
                    obj = getattr(obj, attr)
                return obj, parts[-1], getattr(obj, parts[-1])
            except AttributeError:
                return None
        return None

    def blocker(name):
        def blocked(*args, **kwargs):
            raise AssertionError(
                f"your code called {name}, the course's reference for this question, which the "
                "tests compare your answer with: write the computation yourself.")
        return blocked

    @contextlib.contextmanager
    def forbid(*functions):
        patches = []  # (namespace setter, key, original)
        for name in names:
            found = resolve(name)
            if found is None:
                continue
            owner, attr, original = found
            patches.append((owner, attr, original, blocker(name)))
        undo = []
        try:
            for owner, attr, original, blocked in patches:
                setattr(owner, attr, blocked)
                undo.append(lambda o=owner, a=attr, v=original: setattr(o, a, v))
            for fn in functions:
                scope = getattr(getattr(fn, "__wrapped__", fn), "__globals__", None)
                if scope is None:
                    continue
                for key, value in list(scope.items()):
                    for _, _, original, blocked in patches:
                        if value is original:
                            scope[key] = blocked
                            undo.append(lambda s=scope, k=key, v=value: s.__setitem__(k, v))
            yield
        finally:
            for step in reversed(undo):
                step()

    return forbid


#: In a master opened in Jupyter the guard blocks nothing (the build inlines the real one).
forbid = make_forbid([])
