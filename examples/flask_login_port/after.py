"""The app of ``before.py`` on flask-lucia: the same models, ``current_user`` is still a
``User`` (with ``current_user.posts``), and sessions live in the database.

What changed: the ``user_loader`` is gone, ``Lucia(app, db=db, user_model=User)`` sits
where ``LoginManager`` was, and the views call ``lucia`` for passwords and sessions.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, redirect, request
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from flask_lucia import Lucia, LuciaError, current_user, login_required, sign_in, sign_out


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(255), unique=True, nullable=False)
    username = db.Column(db.String(64), unique=True, nullable=False)
    password_hash = db.Column(db.String(255))  # no longer read: drop it once the port is done
    posts = db.relationship("Post", back_populates="author")


class Post(db.Model):  # type: ignore[name-defined,misc]
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    author_id = db.Column(db.Integer, db.ForeignKey(User.id), nullable=False)
    author = db.relationship(User, back_populates="posts")


# Where LoginManager was: the app's own User is the users table; no user_loader.
lucia = Lucia(db=db, user_model=User)


def create_app(database_url: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="dev-only-secret",
        SQLALCHEMY_DATABASE_URI=database_url,
        LUCIA_BASE_URL="http://localhost:5000",  # where mail links point (never the Host header)
        LUCIA_REGISTER_VIEWS=False,  # this app keeps its own register and login views
        LUCIA_SIGN_UP=False,  # and its own /register: no second way to make an account
        LUCIA_LOGIN_VIEW="login_page",  # was login_manager.login_view: where to redirect
    )
    db.init_app(app)
    lucia.init_app(app)

    @app.post("/register")
    def register() -> Any:
        email = request.form["email"].lower()
        try:
            user = lucia.create_user(
                "email",
                email,
                password=request.form["password"],
                user_data={"email": email, "username": request.form["username"]},
            )
        except (LuciaError, ValueError):
            abort(400)
        sign_in(user)
        return redirect("/posts")

    @app.get("/login", endpoint="login_page")
    def login_page() -> str:
        return "<form method=post><input name=email><input name=password type=password></form>"

    @app.post("/login")
    def login() -> Any:
        try:
            user = lucia.authenticate_user(
                "email", request.form["email"].lower(), request.form["password"]
            )
        except (LuciaError, ValueError):
            abort(400)
        sign_in(user, remember=bool(request.form.get("remember")))  # was login_user(remember=)
        return redirect("/posts")

    @app.post("/logout")
    def logout() -> Any:
        sign_out()
        return redirect("/login")

    @app.get("/posts")
    @login_required
    def posts() -> str:
        titles = ", ".join(post.title for post in current_user.posts)
        return f"{current_user.username}: {titles}"

    return app
